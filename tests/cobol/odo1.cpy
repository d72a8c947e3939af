      * ODO1 - OCCURS 4 DEPENDING ON, WITHOUT "m TO": THE MINIMUM IS 1.
       01  ODO1-REC.
           05  P-ID                PIC 9(4).
           05  P-CNT               PIC S9(4) COMP.
           05  P-TAGS OCCURS 4 TIMES DEPENDING ON P-CNT PIC X(3).
