      * WRITES VARIABLE-LENGTH RECORDS OF ODONEST.CPY (KIND N) AND
      * ODOOCC.CPY (KIND C), ONE PER INPUT LINE. BUILD WITH -FODOSLIDE
      * (GNUCOBOL REFUSES NESTED OCCURS DEPENDING ON WITHOUT IT, EVEN
      * WITH -FCOMPLEX-ODO; WITH IT, ITEMS AFTER A VARIABLE TABLE MOVE
      * UP AS ON IBM COMPILERS).
      * NEST-REC IS WRITTEN AS THE COMPILER LAYS IT OUT (LENGTH OF THE
      * RECORD WITH ITS CURRENT COUNTS).
      * OCC-REC: NEITHER COMPILER SIZES EACH OCCURRENCE BY ITS OWN
      * COUNTER. IBM'S LANGUAGE REFERENCE ALLOWS NO SUBSCRIPTED
      * DEPENDING ON OBJECT (SO NONE INSIDE A TABLE) AND NONE AFTER A
      * VARIABLE TABLE; GNUCOBOL ACCEPTS THE COPYBOOK BUT SIZES EVERY
      * OCCURRENCE BY THE COUNTER OF THE FIRST. SUCH RECORDS ARE WRITTEN
      * PIECE BY PIECE, AS HERE: EACH OCCURRENCE IS FILLED IN OCCURRENCE
      * 1 OF THE COPYBOOK'S TABLE WITH ITS OWN COUNT AND APPENDED TO THE
      * RECORD WITH ITS LENGTH OF.
       IDENTIFICATION DIVISION.
       PROGRAM-ID. ODONEST.
       ENVIRONMENT DIVISION.
       INPUT-OUTPUT SECTION.
       FILE-CONTROL.
           SELECT IN-FILE ASSIGN TO INFILE
               ORGANIZATION IS LINE SEQUENTIAL.
           SELECT OUT-FILE ASSIGN TO OUTFILE
               ORGANIZATION IS SEQUENTIAL.
       DATA DIVISION.
       FILE SECTION.
       FD  IN-FILE.
       01  IN-N.
           05  I-KIND              PIC X.
           05  I-ID                PIC 9(4).
           05  I-OCNT              PIC 9.
           05  I-ICNT              PIC 9.
           05  I-FCNT              PIC 9.
           05  I-OUTER OCCURS 4.
               10  I-KEY           PIC X(2).
               10  I-INNER OCCURS 3.
                   15  I-CODE      PIC X(3).
                   15  I-AMT       PIC S9(5)V99 SIGN LEADING SEPARATE.
               10  I-FLAG          PIC X.
           05  I-FIXED OCCURS 2.
               10  I-FX            PIC X.
               10  I-FV            PIC 9(2) OCCURS 3.
           05  I-TAIL              PIC X(3).
       01  IN-C.
           05  FILLER              PIC X.
           05  J-ID                PIC 9(4).
           05  J-PAIR OCCURS 2.
               10  J-PCNT          PIC 9.
               10  J-PV            PIC X(2) OCCURS 3.
           05  J-GCNT              PIC 9.
           05  J-GRP OCCURS 3.
               10  J-CNT           PIC 9.
               10  J-AMT           PIC S9(3)V9 SIGN LEADING SEPARATE
                                   OCCURS 4.
               10  J-NOTE          PIC X(2).
           05  J-TAIL              PIC X(2).
       FD  OUT-FILE
           RECORD VARYING IN SIZE FROM 1 TO 200 CHARACTERS
           DEPENDING ON WS-LEN.
       01  OUT-REC                 PIC X(200).
       WORKING-STORAGE SECTION.
       COPY "odonest.cpy".
       COPY "odoocc.cpy".
       01  WS-BUF                  PIC X(200).
       01  WS-POS                  PIC 9(4) COMP.
       01  WS-LEN                  PIC 9(4) COMP.
       01  WS-J                    PIC 9(2).
       01  WS-K                    PIC 9(2).
       01  WS-EOF                  PIC X VALUE "N".
       PROCEDURE DIVISION.
           OPEN INPUT IN-FILE OUTPUT OUT-FILE.
           PERFORM UNTIL WS-EOF = "Y"
               READ IN-FILE
                   AT END MOVE "Y" TO WS-EOF
                   NOT AT END
                       IF I-KIND = "N"
                           PERFORM WRITE-NEST
                       ELSE
                           PERFORM WRITE-OCC
                       END-IF
               END-READ
           END-PERFORM.
           CLOSE IN-FILE OUT-FILE.
           STOP RUN.
      * THE COUNTERS FIRST: THEY PLACE EVERY ITEM AFTER THEIR TABLES.
       WRITE-NEST.
           MOVE I-ID TO N-ID.
           MOVE I-OCNT TO N-OCNT.
           MOVE I-ICNT TO N-ICNT.
           MOVE I-FCNT TO N-FCNT.
           PERFORM VARYING WS-J FROM 1 BY 1 UNTIL WS-J > N-OCNT
               MOVE I-KEY(WS-J) TO N-KEY(WS-J)
               PERFORM VARYING WS-K FROM 1 BY 1 UNTIL WS-K > N-ICNT
                   MOVE I-CODE(WS-J, WS-K) TO N-CODE(WS-J, WS-K)
                   MOVE I-AMT(WS-J, WS-K) TO N-AMT(WS-J, WS-K)
               END-PERFORM
               MOVE I-FLAG(WS-J) TO N-FLAG(WS-J)
           END-PERFORM.
           PERFORM VARYING WS-J FROM 1 BY 1 UNTIL WS-J > 2
               MOVE I-FX(WS-J) TO N-FX(WS-J)
               PERFORM VARYING WS-K FROM 1 BY 1 UNTIL WS-K > N-FCNT
                   MOVE I-FV(WS-J, WS-K) TO N-FV(WS-J, WS-K)
               END-PERFORM
           END-PERFORM.
           MOVE I-TAIL TO N-TAIL.
           MOVE LENGTH OF NEST-REC TO WS-LEN.
           WRITE OUT-REC FROM NEST-REC.
      * EACH OCCURRENCE IS BUILT IN OCCURRENCE 1 OF ITS TABLE. AN ITEM
      * AFTER A TABLE IS PLACED BY THE COUNTERS BEFORE IT, WHICH MUST BE
      * SET WHEN IT IS REFERENCED (IBM'S RULE TOO): RESET-COUNTERS SETS
      * THEM, IN STORAGE ORDER, TO C-PCNT 0, C-GCNT 1, C-CNT(1) 0.
       WRITE-OCC.
           PERFORM RESET-COUNTERS.
           MOVE 1 TO WS-POS.
           MOVE J-ID TO C-ID.
           MOVE C-ID TO WS-BUF(WS-POS:LENGTH OF C-ID).
           ADD LENGTH OF C-ID TO WS-POS.
           PERFORM VARYING WS-J FROM 1 BY 1 UNTIL WS-J > 2
               MOVE J-PCNT(WS-J) TO C-PCNT(1)
               PERFORM VARYING WS-K FROM 1 BY 1 UNTIL WS-K > C-PCNT(1)
                   MOVE J-PV(WS-J, WS-K) TO C-PV(1, WS-K)
               END-PERFORM
               MOVE C-PAIR(1) TO WS-BUF(WS-POS:LENGTH OF C-PAIR(1))
               ADD LENGTH OF C-PAIR(1) TO WS-POS
           END-PERFORM.
           PERFORM RESET-COUNTERS.
           MOVE J-GCNT TO C-GCNT.
           MOVE C-GCNT TO WS-BUF(WS-POS:LENGTH OF C-GCNT).
           ADD LENGTH OF C-GCNT TO WS-POS.
           MOVE 1 TO C-GCNT.
           PERFORM VARYING WS-J FROM 1 BY 1 UNTIL WS-J > J-GCNT
               MOVE J-CNT(WS-J) TO C-CNT(1)
               PERFORM VARYING WS-K FROM 1 BY 1 UNTIL WS-K > C-CNT(1)
                   MOVE J-AMT(WS-J, WS-K) TO C-AMT(1, WS-K)
               END-PERFORM
               MOVE J-NOTE(WS-J) TO C-NOTE(1)
               MOVE C-GRP(1) TO WS-BUF(WS-POS:LENGTH OF C-GRP(1))
               ADD LENGTH OF C-GRP(1) TO WS-POS
           END-PERFORM.
           PERFORM RESET-COUNTERS.
           MOVE J-TAIL TO C-TAIL.
           MOVE C-TAIL TO WS-BUF(WS-POS:LENGTH OF C-TAIL).
           ADD LENGTH OF C-TAIL TO WS-POS.
           COMPUTE WS-LEN = WS-POS - 1.
           WRITE OUT-REC FROM WS-BUF.
       RESET-COUNTERS.
           MOVE 0 TO C-PCNT(1).
           MOVE 0 TO C-PCNT(2).
           MOVE 1 TO C-GCNT.
           MOVE 0 TO C-CNT(1).
