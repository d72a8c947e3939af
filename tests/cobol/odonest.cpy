      * ODONEST - NESTED OCCURS DEPENDING ON (IBM "COMPLEX ODO"): A
      * VARIABLE TABLE OF VARIABLE-LENGTH ELEMENTS AND A FIXED TABLE OF
      * VARIABLE-LENGTH ELEMENTS. THE COUNTERS SIT IN A GROUP BEFORE THE
      * TABLES; ITEMS AFTER EACH VARIABLE TABLE MOVE UP. 0 COUNTS
      * ALLOWED.
       01  NEST-REC.
           05  N-ID                PIC 9(4).
           05  N-COUNTS.
               10  N-OCNT          PIC 9.
               10  N-ICNT          PIC S9(3) COMP-3.
               10  N-FCNT          PIC 9(2) COMP.
           05  N-OUTER OCCURS 0 TO 4 TIMES DEPENDING ON N-OCNT.
               10  N-KEY           PIC X(2).
               10  N-INNER OCCURS 0 TO 3 TIMES DEPENDING ON N-ICNT.
                   15  N-CODE      PIC X(3).
                   15  N-AMT       PIC S9(5)V99.
               10  N-FLAG          PIC X.
           05  N-FIXED OCCURS 2 TIMES.
               10  N-FX            PIC X.
               10  N-FV OCCURS 0 TO 3 TIMES DEPENDING ON N-FCNT
                                   PIC 9(2).
           05  N-TAIL              PIC X(3).
