      * WRITES VARIABLE-LENGTH RECORDS OF ODO.CPY AND ODO1.CPY, ONE PER
      * INPUT LINE (KIND O OR P). THE RECORD LENGTH IS THE COMPILER'S
      * (LENGTH OF THE RECORD WITH ITS CURRENT OCCURS DEPENDING ON
      * COUNT). THE LENGTH PREFIX FORMAT IS COB_VARSEQ_FORMAT'S.
       IDENTIFICATION DIVISION.
       PROGRAM-ID. ODOW.
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
       01  IN-REC.
           05  I-KIND              PIC X.
           05  I-ID                PIC 9(4).
           05  I-CNT               PIC 9(2).
           05  I-NAME              PIC X(6).
           05  I-ITEM OCCURS 5.
               10  I-SKU           PIC X(4).
               10  I-QTY           PIC S9(3) SIGN LEADING SEPARATE.
               10  I-PRICE         PIC S9(5)V99 SIGN LEADING SEPARATE.
           05  I-END               PIC X(2).
       FD  OUT-FILE
           RECORD VARYING IN SIZE FROM 1 TO 100 CHARACTERS
           DEPENDING ON WS-LEN.
       01  OUT-REC                 PIC X(100).
       WORKING-STORAGE SECTION.
       COPY "odo.cpy".
       COPY "odo1.cpy".
       01  WS-LEN                  PIC 9(4) COMP.
       01  WS-I                    PIC 9(2).
       01  WS-EOF                  PIC X VALUE "N".
       PROCEDURE DIVISION.
           OPEN INPUT IN-FILE OUTPUT OUT-FILE.
           PERFORM UNTIL WS-EOF = "Y"
               READ IN-FILE
                   AT END MOVE "Y" TO WS-EOF
                   NOT AT END PERFORM WRITE-ONE
               END-READ
           END-PERFORM.
           CLOSE IN-FILE OUT-FILE.
           STOP RUN.
       WRITE-ONE.
           IF I-KIND = "O"
               MOVE I-ID TO O-ID
               MOVE I-CNT TO O-CNT
               MOVE I-NAME TO O-NAME
               PERFORM VARYING WS-I FROM 1 BY 1 UNTIL WS-I > O-CNT
                   MOVE I-SKU(WS-I) TO O-SKU(WS-I)
                   MOVE I-QTY(WS-I) TO O-QTY(WS-I)
                   MOVE I-PRICE(WS-I) TO O-PRICE(WS-I)
               END-PERFORM
               MOVE LENGTH OF ODO-REC TO WS-LEN
               WRITE OUT-REC FROM ODO-REC
           ELSE
               MOVE I-ID TO P-ID
               MOVE I-CNT TO P-CNT
               PERFORM VARYING WS-I FROM 1 BY 1 UNTIL WS-I > P-CNT
                   MOVE I-SKU(WS-I) TO P-TAGS(WS-I)
               END-PERFORM
               MOVE LENGTH OF ODO1-REC TO WS-LEN
               WRITE OUT-REC FROM ODO1-REC
           END-IF.
